"""Comparison methods beside MSCNN (LBP-TOP, ...), each scored under the same LOSO protocol."""
