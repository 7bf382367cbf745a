"""The stages of rendering a page, in the order a stage may import them (`core` and the stages before it).

1. `backgrounds.py`: the product surface (photo crop or procedural material);
2. `text.py`: a block's text (patterns, dates, counters, fields);
3. `fonts.py`, `dotmatrix.py`: the glyphs (TrueType/variable fonts; procedural dot matrix);
4. `typeset.py`: lines laid out in the block's frame, each character drawn into the page with its exact quad;
5. `layout.py`: camera tilt, regions, the block's size and place on the page;
6. `legibility.py`: the measure that `marking` and `effects` keep every character above;
7. `marking.py`: how the characters become a mark (inkjet, thermal, laser, emboss, stamp, engrave);
8. `effects/`: post-effects on the finished page (albumentations transforms).

`render.render_sample` runs them: background, camera, then per block text, font, typography, place and draw,
mark; then the effects. Each module holds its recipe section (pydantic, on `core.config`) next to the code
that uses it. docs/architecture.md says where a new stage's code goes.
"""
