"""C-GET and C-MOVE SCP (PS3.4 C.4.3, C.4.2): instances found by QIDO-RS, fetched by WADO-RS,
sent by C-STORE sub-operations."""
