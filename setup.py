"""mtrec: a multi-task TFRS recommender built as a TFX pipeline.

The repository keeps the TFX template layout (pipeline/, models/, components/,
data/, serving/ and contracts/ at the top level); setup.py installs them under
one namespace, `mtrec.*`, so nothing generic like `models` lands in site-packages.
"""

from pathlib import Path

from setuptools import setup

SUBPACKAGES = {
    "mtrec.contracts": "contracts",
    "mtrec.pipeline": "pipeline",
    "mtrec.models": "models",
    "mtrec.components": "components",
    "mtrec.data": "data",
    "mtrec.serving": "serving",
}
# Every components/<name>/ package, found rather than listed: a hand-kept list
# once left example_gen out of the wheel (the image failed to import it).
HERE = Path(__file__).resolve().parent
COMPONENTS = sorted(p.parent.name for p in (HERE / "components").glob("*/__init__.py"))

packages = ["mtrec", "mtrec.commands", "mtrec.report", *SUBPACKAGES]
package_dir = {"mtrec": "mtrec", **SUBPACKAGES}
for name in COMPONENTS:
    packages.append(f"mtrec.components.{name}")
    package_dir[f"mtrec.components.{name}"] = f"components/{name}"

setup(
    name="mtrec",
    version="0.1.0",
    description="Multi-task TFRS recommender as a TFX pipeline (Beam, Kubeflow, TF Serving)",
    python_requires=">=3.10,<3.11",
    packages=packages,
    package_dir=package_dir,
    package_data={
        "mtrec.data": ["sample/*.csv"],
        "mtrec.pipeline": ["schema/*.pbtxt"],
    },
    install_requires=[
        "tfx[kfp]==1.16.0",
        "tensorflow==2.16.2",
        "tf-keras~=2.16.0",
        "tensorflow-recommenders==0.7.7",
        "tensorflow-transform==1.16.0",
        "tensorflow-model-analysis~=0.47.0",
        "apache-beam[gcp]==2.74.0",
        "keras-nlp==0.25.1",
        "tensorflow-text~=2.16.1",
        "tensorflow-serving-api~=2.16.1",
        "dill",
        "matplotlib",  # the run report's plots (mtrec/report/)
        "pandas",
        "pyarrow",
    ],
    extras_require={"test": ["pytest", "pytest-xdist", "ruff", "mypy", "hypothesis"]},
    entry_points={"console_scripts": ["mtrec=mtrec.cli:main"]},
)
