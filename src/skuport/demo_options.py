"""The option lists of the demo catalogue, shared by the seed world (skuport.demo) and the synthetic
records (skuport.demo_synthetic) without either importing the other."""

COLORS = ["Black", "White", "Navy", "Red", "Green", "Sand", "Grey", "Yellow"]
SIZES = ["XS", "S", "M", "L", "XL", "XXL"]
MATERIALS = ["Nylon", "Polyester", "Cotton", "Wool", "Recycled polyester", "Gore-Tex"]
