"""CGCF: learned conformer generation (Xu, Luo, Bengio, Peng, Tang, ICLR 2021), beside ETKDG.

A continuous normalizing flow over the distances of the extended graph (atoms 1-3 bonds apart),
distance geometry back to 3D with the input's chirality, an energy network trained by
noise-contrastive estimation against the frozen flow, Langevin steps on the tilted density, and
a hybrid that ranks ETKDG conformers with the learned model. See ``docs/cgcf.md``.
"""
