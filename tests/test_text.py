from stoplight.core.text import clip


def test_text_that_fits_is_kept_whole():
    assert clip("Green: review queue is flowing", 140) == "Green: review queue is flowing"
    assert clip("x" * 140, 140) == "x" * 140


def test_longer_text_is_cut_to_the_limit_with_an_ellipsis():
    clipped = clip("Invalid .github/stoplight.yml: " + "y" * 200, 140)
    assert len(clipped) == 140
    assert clipped.endswith("y…")
