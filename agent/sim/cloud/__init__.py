"""The cloud API emulators: ACK CS (cs_api, its reply shapes in cs_shapes), Function Compute
(fc_api for InvokeFunction of FC 2.0 and 3.0, fc_triggers for their HTTP triggers, the function
it hosts in fc_runtime), ACS3 signatures (acs3), credentials, and the seam to the simulated pools
(cloud_model)."""
