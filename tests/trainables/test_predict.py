"""Which files `predict` classifies, and what it reports instead of classifying."""

from serving.predict import Failure, image_files


def test_folders_are_searched_recursively_and_missing_or_empty_paths_reported(tmp_path):
    for name in ("b/2.png", "b/deeper/1.JPG", "a.jpeg", "notes.txt", "empty/readme.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = list(
        image_files(
            [
                str(tmp_path / "b"),
                str(tmp_path / "a.jpeg"),
                str(tmp_path / "notes.txt"),
                str(tmp_path / "empty"),
                str(tmp_path / "gone.png"),
            ]
        )
    )
    files = [item for item in found if isinstance(item, str)]
    failures = {item.path: item.reason for item in found if isinstance(item, Failure)}
    # Folders yield only image files, sorted; a file named explicitly is always tried (decoding decides).
    assert files == [
        str(tmp_path / "b/2.png"),
        str(tmp_path / "b/deeper/1.JPG"),
        str(tmp_path / "a.jpeg"),
        str(tmp_path / "notes.txt"),
    ]
    assert failures == {
        str(tmp_path / "empty"): "folder holds no images (.jpg, .jpeg, .png, .bmp, ...)",
        str(tmp_path / "gone.png"): "no such file or folder",
    }
