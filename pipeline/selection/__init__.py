"""Model selection: k and the distance metric of kNN by cross-validation
(:mod:`pipeline.selection.knn_cv`), and a coarse-to-fine random search of any
classifier's hyperparameters (:mod:`pipeline.selection.search`)."""
from pipeline.selection.knn_cv import KnnCVResult, cross_validate_knn, cv_knn_on_dataset, make_folds, stratified_subset
from pipeline.selection.search import SearchResult, parse_space, random_search

__all__ = [
    "KnnCVResult",
    "SearchResult",
    "cross_validate_knn",
    "cv_knn_on_dataset",
    "make_folds",
    "parse_space",
    "random_search",
    "stratified_subset",
]
