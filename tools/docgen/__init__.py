"""Generated parts of the README and the docs (``make docs``).

A generated part sits between two markers in a Markdown file::

    <!-- generated NAME: make docs writes this part from its source; do not edit -->
    ...
    <!-- end generated NAME -->

``NAME`` is a key of :data:`docgen.sections.SECTIONS`, whose function renders the part from its
one source (a measured record, a config file, the CLI's parser). ``python tools/make_docs.py``
rewrites every part; ``--check`` changes nothing and fails on a part that is out of date, an
unknown name or a section that no page uses; ``tests/test_docs.py`` runs the check.
"""
