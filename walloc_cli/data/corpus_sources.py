"""The photo corpus's sources: which package files are photographs, and the fixed split.

Every entry was decided by looking at contact sheets of everything >= 256 px in the package, with
two statistics as a screen (unique colours in a 128x128 thumbnail, share of horizontally flat
pixel pairs): drawings, renders, icons, screenshots, maps, paintings, textures and effect demos
are left out by name (``DATA.md`` lists what and why). ``include`` patterns match a member's path
inside the package (``fnmatch``: ``*`` crosses ``/``); a member inside an ``.rcc`` or ``.edj``
bundle is ``bundle-path!inner-path``. Never listed here, because they are independent test sets:
Debian ``plasma-workspace-wallpapers``, ``libjxl-testdata``, ``cimg-examples``,
``insighttoolkit5-examples`` and dgsamples' WorldView-2 scene.
"""

from __future__ import annotations

import dataclasses

from walloc_cli.data.packages import Package


@dataclasses.dataclass(frozen=True)
class PhotoSource:
    """Photos of one package.

    ``min_factor``/``target_side``: each photo is downscaled by an integer factor
    ``clamp(round(long side / target_side), min_factor, 4)`` (Lanczos), which washes out JPEG/WebP
    artefacts where the photo is big enough to afford it. ``largest_only`` keeps one image per
    bundle (Enlightenment backgrounds hold the same photo at up to 17 sizes). ``licence`` is used
    when the package's copyright file names none for the file.
    """

    package: Package
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    licence: str = ""
    min_factor: int = 1
    target_side: int = 1920
    largest_only: bool = False


def _deb(name: str) -> Package:
    return Package(name, "deb")


_GCOMPRIS = "usr/share/gcompris-qt/rcc/"
_SCRATCH = "usr/share/scratch/Media/Backgrounds/"
_QT = "usr/lib/x86_64-linux-gnu/qt5/examples/widgets/"

PHOTO_SOURCES: tuple[PhotoSource, ...] = (
    # Today's set (walloc data photos), same downscaling: its 8 test photos stay the test set.
    PhotoSource(_deb("lomiri-wallpapers-16.04"), ("usr/share/backgrounds/*.jpg",), min_factor=2, target_side=1400),
    PhotoSource(_deb("mate-backgrounds"), ("usr/share/backgrounds/mate/nature/*.jpg",), min_factor=2, target_side=1400),
    PhotoSource(
        _deb("opencv-doc"),
        tuple(
            f"usr/share/doc/opencv-doc/examples/data/{name}"
            for name in (
                "baboon.jpg", "building.jpg", "butterfly.jpg", "home.jpg", "messi5.jpg", "orange.jpg", "fruits.jpg",
                "aero1.jpg", "aero3.jpg", "leuvenA.jpg", "leuvenB.jpg", "HappyFish.jpg", "apple.jpg", "graf1.png",
                "graf3.png", "squirrel_cls.jpg", "stuff.jpg", "lena.jpg",
            )
        ),
        min_factor=2,
        target_side=1400,
    ),
    PhotoSource(
        Package("scikit-image", "pypi", "0.26.0"),
        tuple(f"skimage/data/{n}" for n in ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")),
        licence="public domain or CC0 (skimage.data docstrings); motorcycle_left: Middlebury 2014 stereo data",
        target_side=100_000,  # used as is, like today
    ),
    # New: GCompris activity photos (WebP inside Qt .rcc bundles). Left out: lang (drawings),
    # babyshapes/paintings (paintings, cut-outs), categorization (small cut-outs), solar_system,
    # gravity (renders), details' paintings.
    PhotoSource(
        _deb("gcompris-qt-data"),
        tuple(
            f"{_GCOMPRIS}{bundle}.rcc!gcompris/src/activities/{bundle}/resource/{inner}"
            for bundle, inner in (
                ("clickgame", "sea*.webp"),
                ("erase", "*.webp"),
                ("explore_farm_animals", "animals/*.webp"),
                ("explore_monuments", "*/*.webp"),
                ("explore_world_animals", "animals/*.webp"),
                ("explore_world_music", "music/*.webp"),
            )
        )
        + tuple(
            f"{_GCOMPRIS}details.rcc!gcompris/src/activities/details/resource/image/{name}_background.webp"
            for name in (
                "Louvre_2007_02_24_c", "FanoeWindmill", "EgeskovSlotSpejling", "GizahPyramids", "EilanDonanCastle",
                "TowerBridgeLondon", "Chenonceau", "NDP", "Nagoya", "TajMahal", "TourEiffel", "Neuschwanstein", "OperaSidney",
            )
        ),
    ),
    # Enlightenment backgrounds that are photographs (Dunes, Flat-Fan, Squiggle*, Sunset-Hills are
    # renders; Paper-Flower and Flat-Stone-Pattern textures).
    PhotoSource(
        _deb("enlightenment-data"),
        tuple(
            f"usr/share/enlightenment/data/backgrounds/{name}.edj!edje/images/*"
            for name in (
                "Bamboo", "Foggy-Trees", "God-Rays", "Green-Maple", "Lichen-Branches", "Mountain", "Peaks", "Red-Maple",
                "Sea-of-Lanterns", "Snow-Trees", "Spruce-Needles", "Sunset-Clouds", "White-Flower", "Yellow-Flower",
            )
        ),
        largest_only=True,
    ),
    PhotoSource(_deb("kphotoalbum"), ("usr/share/kphotoalbum/demo/*.jpg",), licence="GPL-2+"),
    # Scratch backgrounds: the JPEG photos (the GIFs are palette images; these JPEGs are drawings).
    PhotoSource(
        _deb("scratch"),
        (f"{_SCRATCH}*.jpg",),
        exclude=tuple(
            f"{_SCRATCH}{name}.jpg"
            for name in ("Indoors/room1", "Indoors/room2", "Indoors/room3", "Indoors/party-room", "Indoors/spotlight-stage",
                         "Nature/woods-and-bench", "Outdoors/school2", "Outdoors/brick-wall2")
        ),
    ),
    PhotoSource(
        _deb("tuxpaint-data"),
        ("usr/share/tuxpaint/templates/*.jpg", "usr/share/tuxpaint/starters/reef-back.png", "usr/share/tuxpaint/starters/skyline-sf-dusk-back.jpeg"),
    ),
    PhotoSource(_deb("palapeli-data"), ("usr/share/palapeli/collection/*.jpg",)),
    PhotoSource(_deb("lomiri-wallpapers-20.04"), ("usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg",)),
    # Hugin's help pictures are mostly screenshots and remapped panoramas; these three are plain photos.
    PhotoSource(
        _deb("hugin-data"),
        tuple(f"usr/share/hugin/xrc/data/help_en_EN/{n}" for n in ("CA_fringes00.jpg", "CA_tCA00.jpg", "800px-C_Marchi-GrandCentral-adj.jpg")),
    ),
    PhotoSource(
        _deb("qtbase5-examples"),
        (
            f"{_QT}graphicsview/weatheranchorlayout/images/place.jpg",
            f"{_QT}draganddrop/puzzle/example.jpg",
            f"{_QT}itemviews/puzzle/example.jpg",
            f"{_QT}painting/composition/flower.jpg",
            f"{_QT}effects/fademessage/background.jpg",
        ),
    ),
    PhotoSource(Package("sporco", "pypi", "0.2.2.post1"), ("sporco/data/*.png",)),
    PhotoSource(Package("plenoptic", "pypi", "2.1.1"), ("plenoptic/data/macaca_nigra_self-portrait.jpg",)),
    PhotoSource(Package("mahotas", "pypi", "1.4.19"), ("mahotas/demos/data/DepartmentStore.jpg", "mahotas/demos/data/luispedro.jpg", "mahotas/demos/data/lena.jpg")),
    PhotoSource(Package("imgaug", "pypi", "0.4.0"), ("imgaug/quokka.jpg",)),
)

# Held out from every training set, as in walloc data photos (4 scikit-image photos + 4 wallpapers).
TEST_KEYS: frozenset[str] = frozenset(
    {
        "scikit-image:skimage/data/astronaut.png",
        "scikit-image:skimage/data/coffee.png",
        "scikit-image:skimage/data/chelsea.png",
        "scikit-image:skimage/data/rocket.jpg",
        "lomiri-wallpapers-16.04:usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg",
        "lomiri-wallpapers-16.04:usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg",
        "mate-backgrounds:usr/share/backgrounds/mate/nature/LadyBird.jpg",
        "mate-backgrounds:usr/share/backgrounds/mate/nature/Storm.jpg",
    }
)
# Validation: whole packages, never seen in training. kphotoalbum's demo album is everyday
# snapshots (people indoors and out, animals, sea, sunset), palapeli's collection architecture,
# a night bridge, fruit and macro shots: a mix unlike the wallpapers that dominate training.
VALIDATION_PACKAGES: frozenset[str] = frozenset({"kphotoalbum", "palapeli-data"})
