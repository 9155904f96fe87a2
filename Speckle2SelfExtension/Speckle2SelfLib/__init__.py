"""The Speckle2Self module's helper classes, one concern a file (the Slicer convention: DICOMLib,
MONAIAuto3DSegLib). Nothing here imports torch or the engine at load time."""
from .finetune_process import FinetuneProcess
from .live_session import LiveSession
