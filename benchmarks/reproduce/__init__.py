"""The reproduction of the GradNorm paper's table (arXiv:2510.16335), in small rooms.

- :mod:`.settings`: the one table of the authors' settings (dataset, backbone, K, C, T,
  top_k, tau) with the reported scores, the backbones' open_clip tags and the k-means
  protocols;
- :mod:`.cifar`: CIFAR-100's fine-to-coarse table ("CIFAR-20");
- :mod:`.loaders`: the datasets, from torchvision or from ImageFolder layouts;
- :mod:`.runner`: embedding, centres on the training split, clustering of the test split,
  scores against the reported ones, JSON and Markdown.

``benchmarks/reproduce_paper.py`` is the command line.
"""
