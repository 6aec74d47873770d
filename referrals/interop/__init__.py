"""Other systems' formats: FHIR R4 for referrals (fhir.py), Open Referral HSDS 3.1 for the
partner directory, in and out (hsds/)."""
