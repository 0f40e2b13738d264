"""Progress reporting: a tqdm bar on a terminal, scikit-learn's lines elsewhere."""

import sys


class Progress:
    """Reports each epoch's history record when ``verbose`` is set.

    On a terminal with tqdm installed (the ``progress`` extra) it shows a bar
    with the loss and validation score; otherwise it prints scikit-learn's
    ``Iteration N, loss = ...`` lines.
    """

    def __init__(self, verbose, total):
        self.verbose = verbose
        self.bar = None
        if verbose and sys.stderr.isatty():
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, unit="epoch", leave=False)

    def update(self, record):
        if not self.verbose:
            return
        score = record["validation_score"]
        if self.bar is not None:
            shown = {"loss": f"{record['loss']:.4g}"}
            if score is not None:
                shown["val"] = f"{score:.4g}"
            self.bar.set_postfix(shown, refresh=False)
            self.bar.update()
            return
        print("Iteration %d, loss = %.8f" % (record["epoch"], record["loss"]))
        if score is not None:
            print("Validation score: %f" % score)

    def close(self):
        if self.bar is not None:
            self.bar.close()
