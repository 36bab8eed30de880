"""pip-installable form of the repository (editable: `pip install -e .`).

The ROS 2 build (messages, install space) goes through colcon and CMakeLists.txt; this file makes
`pose_core` (and the hand-written `pose_ros` modules) importable and installs the command-line
tools, so training and benchmarking need no ROS.
"""

from setuptools import find_packages, setup

setup(
    name="pose_ros",
    version="0.1.0",
    description="Real-time multi-person human pose estimation for ROS 2 (pose_core library + nodes)",
    packages=find_packages(include=["pose_core", "pose_core.*", "pose_ros", "pose_ros.*"]),
    package_data={"pose_core": ["py.typed", "weights/*.pt", "weights/*.json"]},
    python_requires="==3.11.*",
    install_requires=["torch==2.13.0", "numpy", "opencv-python-headless==4.11.0.86", "scipy"],
    extras_require={
        "eval": ["pycocotools", "xtcocotools"],
        "onnx": ["onnx", "onnxruntime"],
        "train": ["tqdm", "tensorboard", "pyyaml"],
    },
    entry_points={
        "console_scripts": [
            "pose-synth=pose_core.data.synthetic.cli:main",
            "pose-eval=pose_core.evaluation.cli:main",
            "pose-train=pose_core.engine.cli:main",
            "pose-infer=pose_core.inference.cli:main",
            "pose-model-summary=pose_core.models.summary:main",
            "pose-export=pose_core.export.cli:main",
            "pose-bench=pose_core.bench.cli:main",
        ]
    },
)
