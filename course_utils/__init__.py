"""course_utils: the numerical core of the course (numpy only).

One module per concept; each notebook chapter calls into these modules.
Educational material, not medical advice.
"""

__version__ = "0.1.0"
