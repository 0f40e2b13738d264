"""device="auto": train on the GPU when one is usable, otherwise on the CPU.

The same script runs anywhere; the fitted model holds only NumPy arrays.
"""

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skdeep import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, random_state=0)
clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=30, device="auto", random_state=0)
clf.fit(X_train, y_train)
print(f"device='auto': test accuracy {clf.score(X_test, y_test):.3f}; "
      f"weights are {type(clf.coefs_[0]).__name__}s")
