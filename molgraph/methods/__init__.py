"""Methods: one subpackage per method, each registered in :data:`molgraph.registry.METHODS`.

This module is the registry's home: importing it registers the built-in methods. A method's
registration is light (its config dataclasses and a method object); the method's network,
Lightning task and data code are imported when it is used.
"""

from molgraph.methods.caw.method import CAWMethod
from molgraph.methods.certificates.method import SmoothedGCNMethod
from molgraph.methods.cgcf.method import CGCFMethod
from molgraph.methods.graphcnf.method import GraphCNFMethod
from molgraph.methods.cormorant.method import CormorantMethod
from molgraph.methods.ngram.method import NGramMethod
from molgraph.methods.property.method import PropertyMethod
from molgraph.registry import METHODS

for _method in (PropertyMethod(), NGramMethod(), SmoothedGCNMethod(), CAWMethod(), CormorantMethod(), GraphCNFMethod(), CGCFMethod()):  # the property method first: it is the default
    METHODS.register(_method.name, _method, help=_method.help)
