"""Exit codes every `bfr` command shares, so a technician's script can read any of them alike."""

EXIT_OK = 0  # did what was asked
EXIT_NO_RESULT = 1  # ran, but no result: not measured, not completed, or a check found a problem
EXIT_BAD_INPUT = 2  # bad input, or it could not run at all
