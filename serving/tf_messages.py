"""TF runtime errors' messages as a client reads them: without TF's boilerplate.

Split from serving/signature.py, which re-exports `clean_tf_message`.
"""

from __future__ import annotations

import re

# TF's runtime errors start with boilerplate that says nothing to a client.
_NOISE = ("Graph execution error:", "Detected at node", "<stack traces unavailable>")


_FUNCTION_NODE = re.compile(r"\{\{function_node [^}]*\}\}\s*")
# tf.debugging.assert_*'s text: "assertion failed: [message] [Condition x <= y did not hold
# element-wise:] [x (k:0) = ] [9] [y (strided_slice:0) = ] [5]".
_ASSERTION = re.compile(r"assertion failed: \[(?P<message>[^\]]*)\]\s*"
                        r"\[Condition [^\]]*\]\s*(?P<operands>.*)$", re.S)
_OPERAND = re.compile(r"\[\w+ \((?P<tensor>[^)]*?)(?::\d+)?\) = \]\s*\[(?P<value>[^\]]*)\]")


def _clean_assertion(text: str) -> str:
    """"k must not exceed the catalogue size (k = 9, limit = 5)" for TF's assertion text:
    the checked tensor (x, a request input in our signatures) by its name, the bound it
    was held to (y) as the limit."""
    match = _ASSERTION.search(text)
    if match is None:
        return text
    operands = [
        f"{'limit' if i else m['tensor'].rsplit('/', 1)[-1]} = {m['value'].strip()}"
        for i, m in enumerate(_OPERAND.finditer(match["operands"]))
    ]
    message = match["message"].strip().rstrip(".")
    return f"{message} ({', '.join(operands)})" if operands else message


def clean_tf_message(message: str) -> str:
    """A TF runtime error's message without the boilerplate, on one line."""
    lines = [ln for ln in message.splitlines() if ln.strip() and not ln.startswith(_NOISE)]
    text = " ".join(ln.strip() for ln in lines) or message
    # "{{function_node f}} msg [[{{function_node g}}{{node n}}]]" -> "msg"
    text = text.split(" [[{{", 1)[0].split(" [Op:", 1)[0]
    text = _FUNCTION_NODE.sub("", text).strip() or message.strip()
    return _clean_assertion(text)
