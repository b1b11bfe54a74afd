from stages.lib.markdown import compare, image, num, table


def test_compare_names_the_lower_and_the_factor():
    assert compare(0.04, 0.05, "the AE", "PCA", "test MSE") == (
        "The AE's test MSE (0.04) is lower than PCA's (0.05), a factor of 1.25."
    )
    assert compare(3.0, 1.5, "a", "b", "x").startswith("B's x (1.5) is lower than a's (3)")


def test_table_and_numbers():
    assert table(["a", "b"], [[1, 0.123456]]) == "| a | b |\n|---|---|\n| 1 | 0.1235 |\n"
    assert num(None) == "none" and num(7) == "7"
    assert image("plots/x.png", "x") == "![x](../plots/x.png)"
