"""FHIR R4 views of the settlement service: a Claim in, a ClaimResponse out (issue 11)."""
