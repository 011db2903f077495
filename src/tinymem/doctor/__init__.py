"""The dataset doctor: checks a copy of AVA, EPIC-KITCHENS-100 or Breakfast before a long run.

``python -m tinymem.tools.check_data data=<dataset> data.root=/path`` (see
:mod:`tinymem.tools.check_data`). One module per dataset, plus the report (one row per check),
the media checks shared by all three and the official reference counts.
"""
