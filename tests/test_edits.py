import pytest

from partner import edits as E


def test_position_classes_layout():
    assert E.position_classes(2) == [("insert", 0), ("insert", 1), ("insert", 2), ("replace", 0),
                                     ("replace", 1), ("stop", None)]
    assert E.num_classes(3) == 8 and E.stop_class(3) == 7
    assert E.replace_class(1, 2) == 4 and E.insert_class(2, 2) == 2
    with pytest.raises(ValueError):
        E.replace_class(2, 2)


def test_valid_classes_for_short_and_empty_windows():
    assert E.valid_classes(2, 2) == [True] * 6
    assert E.valid_classes(1, 2) == [True, True, False, True, False, True]
    assert E.valid_classes(0, 2) == [True, False, False, False, False, True]


def test_window_starts():
    assert E.window_starts(0, 2) == [0]
    assert E.window_starts(5, 2) == [0, 2, 4]


SENTS = ["Hi", "That sounds hard.", "Have you talked to someone?"]


def test_insert_closes_previous_sentence_and_cleans_candidate():
    out, edit = E.apply_edit(SENTS, 0, 2, E.insert_class(1, 2), "  i'm so sorry you're going through this  ")
    assert out == ["Hi.", "i'm so sorry you're going through this.", "That sounds hard.",
                   "Have you talked to someone?"]
    assert E.join(out) == "Hi. i'm so sorry you're going through this. That sounds hard. Have you talked to someone?"
    assert edit == E.Edit("insert", 1, "i'm so sorry you're going through this.", 1, 0)
    assert SENTS[0] == "Hi"  # input untouched


def test_insert_in_second_window_maps_to_full_response_index():
    out, edit = E.apply_edit(SENTS, 2, 2, E.insert_class(1, 2), "You are not alone!")
    assert out[-1] == "You are not alone!" and edit.position == 3


def test_no_doubled_punctuation():
    assert E.clean_sentence("I'm sorry..") == "I'm sorry."
    assert E.clean_sentence("Really?.") == "Really?"
    assert E.clean_sentence("That hurts ,.") == "That hurts."
    assert E.clean_sentence("Wait... what?") == "Wait... what?"
    assert E.clean_sentence('He said "hang in there."') == 'He said "hang in there."'
    assert E.clean_sentence(". . .") == ""
    assert E.clean_sentence("Hugs :)") == "Hugs :)"
    out, _ = E.apply_edit(["Ugh.", "Sorry."], 0, 2, E.insert_class(1, 2), ". That must hurt..")
    assert E.join(out) == "Ugh. That must hurt. Sorry."


def test_replace_and_delete():
    out, edit = E.apply_edit(SENTS, 0, 2, E.replace_class(1, 2), "That sounds really painful")
    assert out == ["Hi.", "That sounds really painful.", "Have you talked to someone?"]
    assert edit.action == "replace" and edit.replaced == "That sounds hard." and edit.position == 1
    out, edit = E.apply_edit(SENTS, 0, 2, E.replace_class(0, 2), "   ")
    assert out == SENTS[1:] and edit.sentence == "" and edit.replaced == "Hi"


def test_stop_and_empty_response():
    out, edit = E.apply_edit(SENTS, 0, 2, E.stop_class(2), "ignored")
    assert out == SENTS and edit.action == "stop" and edit.sentence == ""
    out, edit = E.apply_edit([], 0, 2, E.insert_class(0, 2), "I hear you")
    assert out == ["I hear you."]
    with pytest.raises(ValueError):
        E.apply_edit([], 0, 2, E.insert_class(1, 2), "x")
    with pytest.raises(ValueError):
        E.apply_edit(["One."], 0, 2, E.replace_class(1, 2), "x")


def test_edit_info_conversion():
    edit_mod = pytest.importorskip("rewards.edit")
    window = SENTS[:2]
    _, edit = E.apply_edit(SENTS, 0, 2, E.replace_class(1, 2), "So hard.")
    info = E.to_edit_info(window, edit)
    assert isinstance(info, edit_mod.EditInfo)
    assert (info.candidate, info.window, info.replaced, info.action) == ("So hard.", window, 1, "replace")
    _, edit = E.apply_edit(SENTS, 2, 2, E.insert_class(0, 2), "Hugs.")
    info = E.to_edit_info(SENTS[2:], edit)
    assert (info.replaced, info.action) == (None, "insert")


MULTI = ("I am so sorry you are going through this.  It sounds exhausting.\n\n"
         "A few things that helped me:\n- talking to a friend\n- walking every morning\n\n"
         "You are not alone in this, really\nTake care\n")


def test_render_keeps_the_original_text_byte_for_byte_outside_the_edits():
    from core.text import split_sentences

    sents = split_sentences(MULTI)
    assert sents[2] == "A few things that helped me:" and len(sents) == 7
    # no edit: the text itself, newlines, double spaces and ':' included
    assert E.render(MULTI, []) == MULTI
    # insert after "A few things that helped me:" (before the list), replace "It sounds exhausting."
    edits = [E.Edit(E.REPLACE, 1, "That sounds exhausting."), E.Edit(E.INSERT, 3, "Maybe these help you too.")]
    assert E.render(MULTI, edits) == (
        "I am so sorry you are going through this.  That sounds exhausting.\n\n"
        "A few things that helped me: Maybe these help you too.\n- talking to a friend\n- walking every morning\n\n"
        "You are not alone in this, really\nTake care\n")
    # delete the first sentence of a paragraph: the paragraph break survives
    assert E.render(MULTI, [{"action": "replace", "position": 2, "sentence": ""}]) == (
        "I am so sorry you are going through this.  It sounds exhausting.\n\n"
        "- talking to a friend\n- walking every morning\n\nYou are not alone in this, really\nTake care\n")
    # insert at the start, and at the end
    assert E.render(MULTI, [E.Edit(E.INSERT, 0, "I hear you.")]) == "I hear you. " + MULTI
    assert E.render(MULTI, [E.Edit(E.INSERT, 7, "I hear you.")]) == MULTI[:-1] + ". I hear you.\n"


def test_render_closes_a_bare_sentence_before_an_insert_on_the_same_line_only():
    assert E.render("Hi I lost my job", [E.Edit(E.INSERT, 1, "I'm sorry.")]) == "Hi I lost my job. I'm sorry."
    assert E.render("Ideas: walk", [E.Edit(E.INSERT, 1, "Also rest.")]) == "Ideas: walk. Also rest."
    assert E.render("", [E.Edit(E.INSERT, 0, "I'm sorry.")]) == "I'm sorry."


def test_an_episode_and_the_template_baseline_keep_the_original_layout():
    from core.text import split_sentences
    from partner.episode import Episode, Step
    from partner.rewriters import TemplateRewriter

    ep = Episode("seeker", MULTI, split_sentences(MULTI))
    for pos, sent in ((3, "Maybe these help you too."),):
        ep.sentences, edit = E.apply_edit(ep.sentences, 2, 2, E.insert_class(1, 2), sent)
        ep.steps.append(Step(0, "seeker", [], 2, 1, None, sent, 0.0, 0.0, edit))
    assert ep.text == MULTI.replace("helped me:\n", "helped me: Maybe these help you too.\n")
    (text, _), = TemplateRewriter("I hear you.", at="end").rewrite(["s"], [MULTI])
    assert text == MULTI[:-1] + ". I hear you.\n"
