"""The network, its model files (TorchScript with a card inside, a checksum beside) and the device it runs on."""
