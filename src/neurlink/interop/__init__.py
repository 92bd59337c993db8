"""Weights from and to other libraries' models: torchvision's (``load_torchvision``,
``to_torchvision_state_dict``), timm's (``load_timm``, ``to_timm_state_dict``) and
segmentation_models_pytorch's (``load_smp``, ``to_smp_state_dict``), Ultralytics' YOLO detectors'
(``load_ultralytics``, ``to_ultralytics_state_dict``; ``ultralytics_predictions`` for its loss); and any
model's, paired with the lines by structure (``load_by_structure``, ``to_reference_state_dict``)."""

from .smp import load_smp as load_smp
from .smp import to_smp_state_dict as to_smp_state_dict
from .structure import load_by_structure as load_by_structure
from .structure import to_reference_state_dict as to_reference_state_dict
from .timm import load_timm as load_timm
from .timm import to_timm_state_dict as to_timm_state_dict
from .torchvision import load_torchvision as load_torchvision
from .torchvision import to_torchvision_state_dict as to_torchvision_state_dict
from .ultralytics import load_ultralytics as load_ultralytics
from .ultralytics import to_ultralytics_state_dict as to_ultralytics_state_dict
from .ultralytics import ultralytics_predictions as ultralytics_predictions
