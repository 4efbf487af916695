"""C-FIND SCP over QIDO-RS: identifier -> request (identifier.py), search (search.py), answers
(answer.py), the handler (handler.py); levels and information models in levels.py."""
