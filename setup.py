"""Which packages the wheel holds (all metadata is in pyproject.toml).

`conf/` and `data/raw` stay where they are in the repository (the one place defaults and the sample live)
and ship inside the wheel as `patchtst_hpo/conf` and `patchtst_hpo/sample_data`; `paths.py` finds either
layout. Their folders are listed as data-only packages, found here so that a new config group needs no
edit and setuptools ships them without warnings. `conf/local/` (personal overrides) never ships.
"""

from setuptools import find_namespace_packages, setup


def data_packages(name: str, where: str, exclude: tuple[str, ...] = ()) -> list[str]:
    found = find_namespace_packages(
        where=where, exclude=[*exclude, *(e + ".*" for e in exclude), "*__pycache__"]
    )
    return [name, *(f"{name}.{p}" for p in found)]


conf = data_packages("patchtst_hpo.conf", "conf", exclude=("local",))
setup(
    packages=[
        *find_namespace_packages(include=["patchtst_hpo", "patchtst_hpo.*"], exclude=["*__pycache__"]),
        # the namespace itself too: an editable install then maps hydra_plugins/ onto the namespace's path,
        # so Hydra's plugin scan (a pkgutil walk of hydra_plugins.__path__) finds the sweeper from any folder
        *find_namespace_packages(include=["hydra_plugins", "hydra_plugins.*"]),
        *conf,
        "patchtst_hpo.sample_data",
        "patchtst_hpo.sample_data.raw",
    ],
    package_dir={"patchtst_hpo.conf": "conf", "patchtst_hpo.sample_data": "data"},
    package_data={
        "patchtst_hpo": ["py.typed"],
        **{p: ["*.yaml"] for p in conf},
        "patchtst_hpo.sample_data": ["README.md"],
        # dataset folders (SPX.OHLCV.daily) are not identifiers, so they are data of raw/, not packages
        "patchtst_hpo.sample_data.raw": ["manifest.json", "*/*.parquet"],
    },
)
