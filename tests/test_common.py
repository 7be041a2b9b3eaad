"""experiments/common.py: flags and the training loop the experiments share."""


def test_flags_given_with_quick_win_over_its_values():
    import imdb

    assert imdb.parse_train_args(["--quick"]).epochs == imdb.QUICK["epochs"] == 1
    args = imdb.parse_train_args(["--quick", "--epochs", "3", "--units", "8"])
    assert (args.epochs, args.units, args.batch_size) == (3, 8, imdb.QUICK["batch_size"])
    assert imdb.parse_train_args(["--epochs", "3"]).units == imdb.DEFAULTS["units"]
