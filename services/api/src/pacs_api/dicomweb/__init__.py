"""DICOMweb services (PS3.18), one module each: STOW-RS, QIDO-RS, WADO-RS, DELETE."""
