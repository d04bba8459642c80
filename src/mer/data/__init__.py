"""Datasets to canonical samples: the loaders (synthetic, CASME II, SAMM, SMIC, the MEGC 2019
composite, any table), frame listing and decoding, face crop, apex spotting."""
