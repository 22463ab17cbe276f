"""Feature extractors: raw pixels, color histogram, HOG, bag of visual words, and the
image check every one of them (and ``ImagePipeline``) applies to its input."""
from features._base import check_images
from features.bovw import BagOfVisualWords
from features.color import ColorHistogram
from features.hog import HOG
from features.raw import RawPixels
from features.stack import FeatureStack

__all__ = ["BagOfVisualWords", "ColorHistogram", "FeatureStack", "HOG", "RawPixels", "check_images"]
