"""The cloud API emulators: ACK CS (cs_api), Function Compute (fc_api), ACS3 signatures (acs3), credentials, and the seam to the simulated pools (cloud_model)."""
