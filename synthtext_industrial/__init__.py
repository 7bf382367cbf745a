"""synthtext-industrial: synthetic product-code OCR images with exact ground truth.

    from synthtext_industrial import load_recipe, render_sample
    recipe = load_recipe("recipes/default.yaml")
    sample = render_sample(recipe, seed=0, index=0)
    sample.image, sample.mask, sample.lines, sample.to_dict()
"""
from .crops import line_crop, line_crops
from .groundtruth import GT_SCHEMA, Char, Field, Line, Sample
from .recipe import Recipe, RecipeError, load_recipe, recipe_from_dict
from .render import encode_image, render_sample

__version__ = "0.4.0"
__all__ = ["GT_SCHEMA", "Char", "Field", "Line", "Recipe", "RecipeError", "Sample", "encode_image",
           "line_crop", "line_crops", "load_recipe", "recipe_from_dict", "render_sample", "__version__"]
