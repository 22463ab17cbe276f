"""Classic classifiers: kNN (L1/L2), linear SVM, softmax, a small fully connected net."""
from classifiers.knn import KNearestNeighbor
from classifiers.linear import LinearSVM, Softmax
from classifiers.net import TwoLayerNet

__all__ = ["KNearestNeighbor", "LinearSVM", "Softmax", "TwoLayerNet"]
