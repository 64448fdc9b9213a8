from huggingtweets.generate import copy_check


def test_a_sample_sharing_eight_words_in_a_row_with_a_post_is_a_copy():
    post = "yesterday i went to the beach with my dog and it rained"
    assert copy_check("My dream is i went to the beach with my dog", "My dream is", [post]) == (8, True)
    assert copy_check("My dream is i went to the beach with a cat", "My dream is", [post]) == (6, False)


def test_a_sample_holding_most_of_a_short_post_is_a_copy_but_the_prompt_alone_is_not():
    assert copy_check("My dream is so much fun today", "My dream is", ["so much fun today"]) == (4, True)
    assert copy_check("My dream is big", "My dream is", ["my dream is"]) == (3, False)
    assert copy_check("My dream is big", "My dream is", []) == (0, False)


def test_words_are_compared_case_insensitively_across_all_posts():
    posts = ["nothing alike here", "One Two Three Four Five Six Seven Eight nine"]
    assert copy_check("my dream is one two three four five six seven eight", "My dream is", posts) == (8, True)
