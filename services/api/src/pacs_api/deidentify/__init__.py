"""De-identification (PS3.15 Annex E): the profile table (:mod:`.profile`), the pure data set
transform (:mod:`.transform`) and the route that makes a new, de-identified study
(:mod:`.service`)."""
