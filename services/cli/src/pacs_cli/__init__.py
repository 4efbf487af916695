"""pacs-cloud's command line, ``pacs``: DIMSE verbs (``echo``, ``send``) for scripts and for
simulating a modality."""
