from stages.lib.markdown import compare, image, num, table
from stages.lib.report import reseeded_text, share_text


def test_compare_names_the_lower_and_the_factor():
    assert compare(0.04, 0.05, "the AE", "PCA", "test MSE") == (
        "The AE's test MSE (0.04) is lower than PCA's (0.05), a factor of 1.25."
    )
    assert compare(3.0, 1.5, "a", "b", "x").startswith("B's x (1.5) is lower than a's (3)")


def test_table_and_numbers():
    assert table(["a", "b"], [[1, 0.123456]]) == "| a | b |\n|---|---|\n| 1 | 0.1235 |\n"
    assert num(None) == "none" and num(7) == "7"
    assert image("plots/x.png", "x") == "![x](../plots/x.png)"


def test_no_false_alarm_in_finitely_many_halvings_is_not_printed_as_zero():
    text = reseeded_text({"splits": 200, "false_alarms": 0})
    assert "a false alarm in 0 of 200 halvings (at most 1.2% at 95%" in text
    assert "fewer than 200 independent" in text


def test_a_pooled_share_never_reads_zero_or_one():
    assert share_text(13, 13) == share_text(0, 11) == ""
    assert share_text(285, 286) == "share above 0.99, "
    assert share_text(134, 286) == "share 0.47, "
