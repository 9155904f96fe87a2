"""How an image reaches the network and comes back: input domains, the log mapping, frame checks,
scan region, speckle grain, local mean, resizing, colour to grey. Inference and training share it."""
