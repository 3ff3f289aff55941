"""The option lists of the demo catalogue, shared by the seed world (skuport.demo) and the synthetic
records (skuport.demo_synthetic) without either importing the other."""

COLORS = ["Black", "White", "Navy", "Red", "Green", "Sand", "Grey", "Yellow"]
SIZES = ["XS", "S", "M", "L", "XL", "XXL"]
MATERIALS = ["Nylon", "Polyester", "Cotton", "Wool", "Recycled polyester", "Gore-Tex"]

_DANISH_GERMAN = {
    "color": {
        "Black": ("Sort", "Schwarz"),
        "White": ("Hvid", "Weiß"),
        "Navy": ("Marineblå", "Marineblau"),
        "Red": ("Rød", "Rot"),
        "Green": ("Grøn", "Grün"),
        "Sand": ("Sand", "Sand"),
        "Grey": ("Grå", "Grau"),
        "Yellow": ("Gul", "Gelb"),
    },
    "material": {
        "Nylon": ("Nylon", "Nylon"),
        "Polyester": ("Polyester", "Polyester"),
        "Cotton": ("Bomuld", "Baumwolle"),
        "Wool": ("Uld", "Wolle"),
        "Recycled polyester": ("Genanvendt polyester", "Recyceltes Polyester"),
        "Gore-Tex": ("Gore-Tex", "Gore-Tex"),
    },
}
OPTION_LABELS = {
    alias: {option: {"seg-da": da, "seg-de": de} for option, (da, de) in options.items()}
    for alias, options in _DANISH_GERMAN.items()
}
"""Danish and German labels of the demo's colours and materials (attribute alias -> option -> segment)."""
