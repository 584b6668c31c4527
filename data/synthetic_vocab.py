"""Fixed word lists behind the synthetic data set.

Each genre owns a handful of description words, so item text carries genre
signal a text encoder can pick up; filler words dilute it to something
realistic. Changing any list changes the generated data (and the embedded
sample), so treat these as frozen.
"""

from __future__ import annotations

GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip

# Relative frequency of each genre among items (MovieLens-like: many dramas and comedies).
GENRE_WEIGHTS = (
    8, 5, 2, 3, 10, 4, 1.5, 13, 2.5, 0.8, 3.5, 1.5, 2.5, 6, 3.5, 6, 2, 1.2,
)  # fmt: skip

GENRE_WORDS = {
    "Action": ("explosion", "chase", "fight", "mercenary", "heist", "bullet", "showdown"),
    "Adventure": ("quest", "treasure", "journey", "jungle", "expedition", "island", "map"),
    "Animation": ("animated", "cartoon", "talking", "colorful", "pixel", "puppet", "drawn"),
    "Children's": ("family", "kids", "puppy", "school", "friendship", "toy", "birthday"),
    "Comedy": ("hilarious", "prank", "awkward", "wedding", "sitcom", "roommate", "laugh"),
    "Crime": ("gangster", "detective", "robbery", "mafia", "cartel", "cop", "undercover"),
    "Documentary": ("interview", "archive", "footage", "history", "nature", "true", "report"),
    "Drama": ("grief", "family", "struggle", "redemption", "illness", "divorce", "memory"),
    "Fantasy": ("dragon", "wizard", "kingdom", "spell", "elf", "prophecy", "sword"),
    "Film-Noir": ("femme", "fatale", "shadow", "smoke", "private", "eye", "double-cross"),
    "Horror": ("haunted", "zombie", "blood", "curse", "scream", "demon", "cabin"),
    "Musical": ("song", "dance", "broadway", "singer", "stage", "melody", "chorus"),
    "Mystery": ("clue", "puzzle", "disappearance", "secret", "riddle", "suspect", "alibi"),
    "Romance": ("love", "kiss", "heartbreak", "affair", "wedding", "passion", "soulmate"),
    "Sci-Fi": ("spaceship", "alien", "robot", "future", "galaxy", "cyborg", "time-travel"),
    "Thriller": ("hostage", "conspiracy", "assassin", "twist", "paranoia", "stalker", "bomb"),
    "War": ("soldier", "battle", "platoon", "invasion", "trench", "general", "resistance"),
    "Western": ("cowboy", "sheriff", "saloon", "outlaw", "frontier", "ranch", "duel"),
}

FILLER_WORDS = (
    "a", "the", "story", "about", "young", "old", "man", "woman", "city", "town", "life",
    "world", "night", "day", "new", "last", "first", "finds", "must", "who", "their",
    "after", "before", "when", "two", "friends", "brother", "sister", "father", "mother",
    "strange", "small", "big", "lost", "home", "road", "summer", "winter", "years", "one",
)  # fmt: skip

# Occupations and their share of users.
OCCUPATIONS = (
    "student", "engineer", "educator", "artist", "administrator", "programmer", "writer",
    "healthcare", "retired", "sales", "scientist", "homemaker", "lawyer", "other",
)  # fmt: skip
OCCUPATION_WEIGHTS = (16, 10, 8, 5, 7, 8, 4, 5, 4, 6, 4, 3, 2, 18)

# Age groups (low, high inclusive) and their share of users (MovieLens-1M-like).
AGE_GROUPS = ((13, 17), (18, 24), (25, 34), (35, 44), (45, 49), (50, 55), (56, 75))
AGE_WEIGHTS = (4, 18, 35, 20, 9, 8, 6)

# Syllables for made-up title words.
SYLLABLES = (
    "ka", "lo", "mi", "ra", "ven", "tor", "si", "da", "mar", "el", "no", "qui", "zan",
    "bel", "ro", "ith", "an", "vor", "lu", "sha", "ten", "gal", "or", "fi",
)  # fmt: skip
