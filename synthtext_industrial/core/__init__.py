"""What every stage shares: recipe config types (`config`), random streams (`streams`), bundled assets
(`assets`), homographies (`geometry`) and the ground-truth records (`groundtruth`). Imports nothing else
of the package."""
