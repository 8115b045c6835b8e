"""Print the requirements of pyproject.toml: the runtime ones plus the named extras."""

import sys
import tomllib


def main() -> None:
    path, *extras = sys.argv[1:]
    with open(path, "rb") as fh:
        project = tomllib.load(fh)["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    print("\n".join(dict.fromkeys(requirements)))


if __name__ == "__main__":
    main()
