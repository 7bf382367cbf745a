"""The stages of rendering a page, in the order `render.render_sample` runs them.

1. `backgrounds.py`: the product surface (photo crop or procedural material);
2. `layout.py` (camera tilt) and, per text block: `text.py` (the code's text), `fonts.py` / `dotmatrix.py`
   (the glyphs), `layout.py` (size and place), `typeset.py` (lay out and draw each character, exact quads);
3. `marking.py`: how the characters become a mark (inkjet, thermal, laser, emboss, stamp, engrave), kept
   legible by `legibility.py`'s measure;
4. `effects/`: post-effects on the finished page (albumentations transforms).

Each module holds its recipe section (pydantic, on `core.config`) next to the code that uses it. A stage
imports only `core` and the stages before it.
"""
