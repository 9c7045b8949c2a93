"""The four Chorus stream processors (baseline, trust, conflict, quarantine) and their shared runtime."""
