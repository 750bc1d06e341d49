"""User-prompt templates in our own wording (the released recipe draws from similar-sized lists):
caption requests, pointing requests, point-and-count / count requests (with the label inserted), and
"no pointing" prefixes for plain counting questions.
"""

from __future__ import annotations

CAPTION = [
    "Describe this image.", "Describe this image in detail.", "Write a long caption for this picture.",
    "What can you see in this picture? Give details.", "Give a thorough description of the image.",
    "Caption this image with as much detail as you can.", "Tell me everything you see in this image.",
    "Write a detailed description of this photo.", "Please describe the picture.",
    "Provide a comprehensive caption for the image.", "What does this image show? Be detailed.",
    "Explain what is depicted in this image.", "Describe the contents of this image thoroughly.",
    "Give me a rich, detailed caption.", "Walk me through what is in this picture.",
    "Describe the scene in this image.", "What is going on in this image? Describe it fully.",
    "Produce a long, descriptive caption for this image.", "Describe everything visible here.",
    "Write a paragraph describing this image.", "Please give a detailed account of this image.",
    "Describe the image, including objects, colors and layout.", "Can you describe this image for me?",
]

SHORT_CAPTION = [
    "Write a short caption for this image.", "Caption this image in one sentence.", "Briefly describe the image.",
    "Give a one-line description of this picture.", "What is this image of, in a few words?",
    "Summarize the image in a sentence.", "Write a brief caption.", "Describe the picture briefly.",
    "One sentence: what does the image show?", "Give a short description of this image.",
]

TRANSCRIPT = [
    "Transcribe the text in this image.", "Read all the text in the image.", "What text appears in this image?",
    "Write out the text shown in the picture.", "Transcribe everything written here.",
]

POINTING = [
    "Point to {label}.", "Point to the {label}.", "Point at every {label}.", "Point to all {label}.",
    "Where are the {label}? Point to them.", "Show me where the {label} are.", "Locate every {label}.",
    "Locate the {label} in the image.", "Mark each {label}.", "Put a point on each {label}.",
    "Find the {label} and point to them.", "Can you point out the {label}?", "Point out all the {label}.",
    "Indicate where the {label} is.", "Indicate each {label} with a point.", "Where is the {label}?",
    "Where can I find {label} in this picture?", "Show the location of the {label}.",
    "Pinpoint the {label}.", "Pinpoint every {label} in the image.", "Point to every instance of {label}.",
    "Give the positions of the {label}.", "Mark the location of each {label}.", "Highlight the {label} with points.",
    "Which parts of the image show {label}? Point to them.", "Point to any {label} you can see.",
    "Help me find the {label}: point to them.", "Identify the {label} by pointing.", "Point: {label}.",
    "Point to {label} in the image.", "Please point to the {label}.", "Could you show me the {label}?",
    "Tag each {label} with a point.", "Drop a point on every {label}.", "Spot the {label} and mark them.",
    "Where exactly is the {label}? Point to it.", "Point to each of the {label}.", "Locate all {label}.",
    "Show me each {label}.", "Find every {label} and mark it.", "Point to all instances of the {label}.",
    "Point to {label}. If there are none, say so.",
    "Point to the {label}; answer \"There are none.\" if the image has none.",
]

POINT_COUNT = [
    "How many {label} are there?", "How many {label} are in the image?", "How many {label} can you see?",
    "Count the {label}.", "Count the {label} in this image.", "Count every {label}.",
    "What is the number of {label}?", "What is the total number of {label} in the picture?",
    "How many {label} does the image show?", "Tell me how many {label} there are.",
    "Count how many {label} appear.", "Give the count of {label}.", "Number of {label}?",
    "Point to the {label} and then count them.", "Point to each {label}, then say how many there are.",
    "Count the {label} by pointing to each one.", "Mark every {label} and give the total.",
    "Point to and count the {label}.", "Find all {label}, point to them and count them.",
    "How many {label} are there? Point to each.", "Locate and count the {label}.",
    "Point at the {label} and report how many.", "Count the {label}, pointing to each as you go.",
    "How many {label}? Show them with points.", "Please count the {label} in the image.",
    "Could you count the {label}?", "I need the number of {label} here.", "Count all of the {label}.",
    "What is the count of {label} in this image?", "How many instances of {label} are there?",
    "How many {label} do you see in the picture?", "Can you tell how many {label} there are?",
    "How many {label} are visible?", "Count the visible {label}.", "Total number of {label}, please.",
    "Count each {label} in the scene.", "How many {label} are shown?", "Enumerate the {label}.",
    "How many {label} are present?", "Give me the number of {label} you can find.",
    "Count the {label} or say there are none.", "How many {label} are there, if any?",
    "Are there any {label}? Count them.", "If you see {label}, count them; otherwise say there are none.",
    "Count the {label} (answer \"There are none.\" if there are none).", "Point to and count every {label}.",
    "Find the {label}. How many are there?", "Please point to the {label} and count them.",
    "Show each {label} and count them.", "How many {label} are in this picture? Point to them.",
    "Count the {label} in the picture and point to each one.", "Count the number of {label}.",
    "What's the number of {label} in this image?", "How many {label} exist in the image?",
    "Could you count and point to the {label}?", "How many {label} can be counted?",
    "Identify and count the {label}.",
]

NO_POINTING = [
    "No pointing: ", "Answer without points: ", "Don't use points. ", "Do not point. ", "Reply without pointing: ",
    "No points, just answer: ", "Without pointing, ", "Answer in words only: ", "Text answer only: ",
    "Don't point; ", "No need to point: ", "Answer directly, no points: ", "Skip the points: ",
    "Without using points: ", "Plain answer, no pointing: ", "Please don't point. ", "Just answer: ",
    "Answer with words, not points: ", "Do not use point tags. ", "No point tags: ", "Avoid pointing: ",
    "Respond without points: ", "Give a plain answer: ", "Without points, answer: ", "No pointing please: ",
    "Reply in text only: ", "Don't mark anything, just answer: ", "Answer plainly: ",
    "No pointing needed: ", "Answer without marking the image: ", "Just say the answer: ", "No coordinates: ",
]

# ------------------------------------------------------------------ labels in "How many {label} …" prompts
_IRREGULAR = {"person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
              "foot": "feet", "tooth": "teeth", "goose": "geese", "leaf": "leaves", "knife": "knives",
              "wife": "wives", "half": "halves", "shelf": "shelves", "wolf": "wolves", "loaf": "loaves",
              "potato": "potatoes", "tomato": "tomatoes", "hero": "heroes", "ox": "oxen", "die": "dice"}
_UNCHANGED = {"sheep", "fish", "deer", "series", "species", "aircraft", "moose", "bison", "salmon", "trout",
              *_IRREGULAR.values()}


_HEAD_ENDS = {"of", "in", "on", "at", "with", "near", "under", "above", "below", "behind", "inside", "from", "by",
              "that", "which", "next", "without", "between", "around", "over", "beside"}


def _plural_word(word: str) -> str:
    low = word.lower()
    if not low.isalpha() or low in _UNCHANGED:
        return word
    if low in _IRREGULAR:
        return word[0] + _IRREGULAR[low][1:]
    if low.endswith("is"):
        return word[:-2] + "es"  # "analysis" -> "analyses"
    if low.endswith("s") and not low.endswith(("ss", "us")):
        return word  # already plural: "circles", "cats"
    if low.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def plural_label(label: str) -> str:
    """English plural of a label's head noun, for prompts like "How many {label} are there?": "yellow circle"
    -> "yellow circles", "cup of tea" -> "cups of tea", "person" -> "people", "star in the left half" -> "stars in
    the left half"; plurals stay as they are."""
    label = " ".join(label.split())
    words = label.split(" ")
    cut = next((i for i, w in enumerate(words) if i and w.lower() in _HEAD_ENDS), len(words))
    head, sep, tail = " ".join(words[:cut]), " " if cut < len(words) else "", " ".join(words[cut:])
    words = head.split(" ")
    if not words[-1]:
        return label
    words[-1] = _plural_word(words[-1])
    return " ".join(words) + sep + tail
