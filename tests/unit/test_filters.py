from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkput.errors import UsageError
from bulkput.local.filters import Filter


def included(flt: Filter, key: str, size: int | None = None) -> bool:
    return flt.exclude_reason(key, size) is None


def test_no_rules_includes_everything_including_hidden_files() -> None:
    flt = Filter.from_patterns()
    assert flt.is_empty
    assert included(flt, "a/b.txt")
    assert included(flt, ".git/config")
    assert included(flt, "a/.hidden")


def test_first_match_wins_in_the_order_given() -> None:
    keep_a = Filter.from_patterns(path_rules=[("include", "a.txt"), ("exclude", "*.txt")])
    assert included(keep_a, "a.txt")
    assert not included(keep_a, "b.txt")
    assert included(keep_a, "b.jpg") is False  # an include was given: unmatched keys are out

    drop_all = Filter.from_patterns(path_rules=[("exclude", "*.txt"), ("include", "a.txt")])
    assert not included(drop_all, "a.txt")
    assert "- '*.txt'" in (drop_all.exclude_reason("a.txt") or "")


def test_only_excludes_leave_unmatched_keys_included() -> None:
    flt = Filter.from_patterns(path_rules=[("exclude", "*.tmp")])
    assert included(flt, "x.jpg")
    assert not included(flt, "deep/dir/x.tmp")


def test_include_alone_means_only_those() -> None:
    flt = Filter.from_patterns(path_rules=[("include", "*.jpg")])
    assert included(flt, "photos/2024/a.jpg")
    assert flt.exclude_reason("notes.txt") == "excluded: matches no include rule"


def test_pattern_matches_parent_directories() -> None:
    flt = Filter.from_patterns(path_rules=[("exclude", "node_modules")])
    assert not included(flt, "web/node_modules/react/index.js")
    assert not included(flt, "node_modules")  # a file of that name too
    assert included(flt, "web/node_modules_old/x.js")

    docs_only = Filter.from_patterns(path_rules=[("include", "docs"), ("exclude", "*")])
    assert included(docs_only, "docs/a/b.md")
    assert not included(docs_only, "readme.md")
    assert not included(docs_only, "src/docs.md")


def test_trailing_slash_matches_directories_only() -> None:
    flt = Filter.from_patterns(path_rules=[("exclude", "build/")])
    assert not included(flt, "build/out.o")
    assert not included(flt, "sub/build/out.o")
    assert included(flt, "build")  # a file named build


def test_leading_slash_anchors_at_the_root() -> None:
    flt = Filter.from_patterns(path_rules=[("exclude", "/top.txt"), ("exclude", "/cache/")])
    assert not included(flt, "top.txt")
    assert included(flt, "sub/top.txt")
    assert not included(flt, "cache/x")
    assert included(flt, "sub/cache/x")


def test_unanchored_pattern_with_slash_matches_trailing_elements() -> None:
    flt = Filter.from_patterns(path_rules=[("exclude", "b/*.tmp")])
    assert not included(flt, "a/b/c.tmp")
    assert not included(flt, "b/c.tmp")
    assert included(flt, "ab/c.tmp")  # whole path elements only
    assert included(flt, "b/c/d.txt")


def test_star_stays_in_one_element_double_star_crosses() -> None:
    one = Filter.from_patterns(path_rules=[("exclude", "/logs/*.log")])
    assert not included(one, "logs/a.log")
    assert included(one, "logs/2024/a.log")
    deep = Filter.from_patterns(path_rules=[("exclude", "/logs/**.log")])
    assert not included(deep, "logs/2024/01/a.log")


def test_question_mark_classes_braces_and_escapes() -> None:
    flt = Filter.from_patterns(path_rules=[
        ("exclude", "file?.txt"),
        ("exclude", "img[0-9].png"),
        ("exclude", "keep[!a-z].md"),
        ("exclude", "*.{bak,swp}"),
        ("exclude", r"literal\*.txt"),
    ])
    assert not included(flt, "file1.txt")
    assert included(flt, "file12.txt")
    assert not included(flt, "img7.png")
    assert included(flt, "imgx.png")
    assert not included(flt, "keep1.md")
    assert included(flt, "keepa.md")
    assert not included(flt, "x.bak") and not included(flt, "y.swp")
    assert included(flt, "z.bakx")
    assert not included(flt, "literal*.txt")
    assert included(flt, "literalX.txt")


def test_unbalanced_brace_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        Filter.from_patterns(path_rules=[("exclude", "a{b")])
    with pytest.raises(UsageError):
        Filter.from_patterns(path_rules=[("exclude", "/")])


def test_exclude_hidden_wins_over_includes() -> None:
    flt = Filter.from_patterns(path_rules=[("include", "*.txt")], exclude_hidden=True)
    assert not included(flt, ".secret.txt")
    assert not included(flt, "a/.git/notes.txt")
    assert included(flt, "a/notes.txt")
    assert flt.prunes_dir(".git")


def test_size_limits_are_inclusive_and_apply_to_files_only() -> None:
    flt = Filter.from_patterns(min_size="10", max_size="1K")
    assert flt.exclude_reason("a", 9) is not None
    assert included(flt, "a", 10)
    assert included(flt, "a", 1024)
    assert "--max-size" in (flt.exclude_reason("a", 1025) or "")
    assert included(flt, "a")  # size unknown (not a file): no size rule


def test_prunes_dir_only_when_no_include_comes_first() -> None:
    flt = Filter.from_patterns(path_rules=[("exclude", "*.o"), ("exclude", "build/")])
    assert flt.prunes_dir("build")
    assert flt.prunes_dir("src/build")
    assert not flt.prunes_dir("src")
    guarded = Filter.from_patterns(path_rules=[("include", "*.keep"), ("exclude", "build/")])
    assert not guarded.prunes_dir("build")  # build/x.keep is included


_name = st.text(alphabet="ab.-_*", min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(st.tuples(st.sampled_from(["include", "exclude"]),
                             st.sampled_from(["a", "b/", "/a", "*.b", "a*", "**", "a/b", "/b/", "{a,b}", "?"])),
                   max_size=4),
    dir_parts=st.lists(_name, min_size=1, max_size=3),
    rest=st.lists(_name, min_size=1, max_size=3),
)
def test_a_pruned_directory_holds_only_excluded_keys(
    rules: list[tuple[str, str]], dir_parts: list[str], rest: list[str]
) -> None:
    flt = Filter.from_patterns(rules)
    dir_key = "/".join(dir_parts)
    if flt.prunes_dir(dir_key):
        assert flt.exclude_reason(dir_key + "/" + "/".join(rest)) is not None


# --- aws style: --include/--exclude, the last matching rule wins, * crosses / ------------------


def test_aws_everyday_idiom_exclude_all_then_include_jpgs() -> None:
    flt = Filter.from_patterns([("exclude", "*"), ("include", "*.jpg")])
    assert included(flt, "a.jpg") and included(flt, "deep/er/b.jpg")
    assert flt.exclude_reason("notes.txt") == "excluded by --exclude '*'"
    assert flt.warnings() == []


def test_aws_last_matching_rule_wins() -> None:
    flt = Filter.from_patterns([("include", "*.jpg"), ("exclude", "raw/*")])
    assert not included(flt, "raw/a.jpg")
    assert included(flt, "edited/a.jpg")
    back = Filter.from_patterns([("exclude", "raw/*"), ("include", "raw/keep.jpg")])
    assert included(back, "raw/keep.jpg") and not included(back, "raw/other.jpg")


def test_aws_unmatched_keys_are_included_even_with_includes() -> None:
    flt = Filter.from_patterns([("include", "*.jpg")])
    assert included(flt, "notes.txt")


def test_aws_star_crosses_slashes_and_patterns_match_the_whole_relative_key() -> None:
    flt = Filter.from_patterns([("exclude", "*.tmp"), ("exclude", "logs/*")])
    assert not included(flt, "a/b/c.tmp")
    assert not included(flt, "logs/2024/01/x.log")
    assert included(flt, "app/logs/x.log")  # anchored at the source folder, as aws does
    assert included(flt, "a.tmpl")
    cls = Filter.from_patterns([("exclude", "img?[0-9].png")])
    assert not included(cls, "imgA7.png") and included(cls, "imgAB.png")


def test_aws_include_before_a_catch_all_exclude_is_warned() -> None:
    flt = Filter.from_patterns([("include", "*.jpg"), ("exclude", "*")])
    assert not included(flt, "a.jpg")  # what aws does: the exclude comes last and wins
    (warning,) = flt.warnings()
    assert "--include '*.jpg' has no effect" in warning and "--exclude '*'" in warning


def test_aws_prunes_a_folder_only_when_no_include_can_win_later() -> None:
    flt = Filter.from_patterns([("exclude", "node_modules/*")])
    assert flt.prunes_dir("node_modules") and flt.prunes_dir("node_modules/react")
    assert not flt.prunes_dir("web")
    assert not Filter.from_patterns([("exclude", "*"), ("include", "*.jpg")]).prunes_dir("a")
    assert Filter.from_patterns([("exclude", "*")]).prunes_dir("a")
    assert not Filter.from_patterns([("exclude", "*.tmp")]).prunes_dir("x.tmpdir")


def test_aws_and_rclone_rules_cannot_be_mixed() -> None:
    with pytest.raises(UsageError, match="not both"):
        Filter.from_patterns([("exclude", "*")], path_rules=[("include", "*.jpg")])


def test_filter_file_reads_plus_and_minus_lines(tmp_path) -> None:
    from bulkput.local.filters import read_filter_file

    path = tmp_path / "rules.txt"
    path.write_text("# photos only\n+ *.jpg\n\n- *\n")
    assert read_filter_file(str(path)) == [("include", "*.jpg"), ("exclude", "*")]
    path.write_text("+ *.jpg\n*.png\n")
    with pytest.raises(UsageError, match="line 2: expected '\\+ GLOB' or '- GLOB'"):
        read_filter_file(str(path))
