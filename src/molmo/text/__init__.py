"""Everything about Molmo's text, in one place: the tokenizer (`tokenizer`), the image special tokens
(`special_tokens`), the prompt format (`prompts`), point text (`points`), the prompt templates
(`templates`), stop strings (`stops`) and the context-length rule (`context`). It imports nothing else from
molmo; every other layer imports these facts from here.
"""
