"""Classic classifiers: kNN (L1/L2), linear SVM, softmax, a small fully connected net, a small ConvNet."""
from classifiers.convnet import ConvNet
from classifiers.knn import KNearestNeighbor
from classifiers.linear import LinearSVM, Softmax
from classifiers.net import TwoLayerNet

__all__ = ["ConvNet", "KNearestNeighbor", "LinearSVM", "Softmax", "TwoLayerNet"]
