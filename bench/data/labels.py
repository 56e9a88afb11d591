"""The label sets tensorflow-datasets' `movielens` builder assigns, as plain data.

The reference program reads MovieLens through tfds, so its genre ids and
occupation labels are tfds ClassLabel indices. Mapping the official files onto
the same indices makes every source produce identical integers.
"""

from __future__ import annotations

# tfds `movie_genres` ClassLabel names; a genre's id is its index here.
TFDS_GENRES: tuple[str, ...] = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "Unknown", "War", "Western", "(no genres listed)",
)

# The 19 genre flag columns of ml-100k's u.item, in file order, as tfds names them
# ("unknown" -> "Unknown", "Children's" -> "Children").
ML100K_GENRE_FLAGS: tuple[str, ...] = (
    "Unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)

# tfds `user_occupation_label` ClassLabel names; a label's id is its index here.
TFDS_OCCUPATIONS: tuple[str, ...] = (
    "academic/educator", "artist", "clerical/admin", "customer service",
    "doctor/health care", "entertainment", "executive/managerial", "farmer", "homemaker",
    "lawyer", "librarian", "other/not specified", "programmer", "retired",
    "sales/marketing", "scientist", "self-employed", "student", "technician/engineer",
    "tradesman/craftsman", "unemployed", "writer",
)

# ml-100k u.user occupation text -> tfds label name (tfds merges a few, as in ml-1m).
ML100K_OCCUPATIONS: dict[str, str] = {
    "administrator": "clerical/admin",
    "artist": "artist",
    "doctor": "doctor/health care",
    "educator": "academic/educator",
    "engineer": "technician/engineer",
    "entertainment": "entertainment",
    "executive": "executive/managerial",
    "healthcare": "doctor/health care",
    "homemaker": "homemaker",
    "lawyer": "lawyer",
    "librarian": "librarian",
    "marketing": "sales/marketing",
    "none": "other/not specified",
    "other": "other/not specified",
    "programmer": "programmer",
    "retired": "retired",
    "salesman": "sales/marketing",
    "scientist": "scientist",
    "student": "student",
    "technician": "technician/engineer",
    "writer": "writer",
}

# ml-1m users.dat occupation code (list index) -> tfds label name; both student
# codes become "student", as tfds does.
ML1M_OCCUPATIONS: tuple[str, ...] = (
    "other/not specified", "academic/educator", "artist", "clerical/admin", "student",
    "customer service", "doctor/health care", "executive/managerial", "farmer",
    "homemaker", "student", "lawyer", "programmer", "retired", "sales/marketing",
    "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)


def genre_id(name: str) -> int:
    """The tfds genre id of a genre name (ml-1m's "Children's" is tfds' "Children")."""
    return TFDS_GENRES.index("Children" if name == "Children's" else name)


def occupation_id(name: str) -> int:
    """The tfds occupation id of a tfds occupation label name."""
    return TFDS_OCCUPATIONS.index(name)
