"""Other systems\x27 formats: FHIR for referrals (fhir.py)."""
