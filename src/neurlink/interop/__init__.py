"""Weights from and to other libraries' models: ``load_torchvision``, ``to_torchvision_state_dict``."""

from .torchvision import load_torchvision as load_torchvision
from .torchvision import to_torchvision_state_dict as to_torchvision_state_dict
