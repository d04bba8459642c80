"""Per-clip preprocessing: Eulerian magnification, onset->apex optical flow, flow images and
masks, previews."""
